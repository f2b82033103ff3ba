"""Name data: the English population of children and their parents, by origin, most common first.

Faker's en_GB tables (ONS frequencies) give the white British surnames and the parents' generation
of given names; the lists below add children's names of recent decades and the larger minority
origins of English cities. Within each list names are in order of popularity (Zipf-weighted)."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence

from faker.providers.person.en_GB import Provider as _FakerGB

ORIGINS = ("english", "south_asian", "african", "caribbean", "eastern_european", "irish", "chinese")


class Weighted:
    """Choices from a list of names with given weights (or Zipf weights by popularity rank)."""

    __slots__ = ("_cumulative", "names")

    def __init__(self, names: Sequence[str], weights: Sequence[float] | None = None) -> None:
        self.names = tuple(names)
        weights = weights if weights is not None else [1 / (rank + 4) for rank in range(len(names))]
        self._cumulative = list(itertools.accumulate(weights))

    def pick(self, rng: random.Random) -> str:
        return self.names[bisect.bisect(self._cumulative, rng.random() * self._cumulative[-1])]


def _zipf(text: str, offset: int = 4) -> Weighted:
    names = text.split()
    return Weighted(names, [1 / (rank + offset) for rank in range(len(names))])


_FAKER_SURNAMES = Weighted(list(_FakerGB.last_names), list(_FakerGB.last_names.values()))

SURNAMES: dict[str, Weighted] = {
    "english": _FAKER_SURNAMES,
    "south_asian": _zipf(
        "Khan Ahmed Hussain Ali Patel Mahmood Iqbal Akhtar Rahman Shah Singh Islam Miah Uddin Chowdhury "
        "Malik Mohammed Sharma Gill Sandhu Dhillon Sidhu Bains Mistry Parmar Chauhan Rana Mirza Butt "
        "Qureshi Raja Haque Hossain Karim Aziz Anwar Javed Zaman Nawaz Choudhury Kumar Begum",
        8,
    ),
    "african": _zipf(
        "Mohamed Ahmed Ali Hassan Abdi Osman Farah Yusuf Ibrahim Omar Okafor Okonkwo Adeyemi Adebayo "
        "Ogunleye Eze Nwosu Okoro Oluwole Bello Mensah Osei Boateng Owusu Asante Appiah Agyeman Kamara "
        "Sesay Conteh Diallo Mwangi Ndlovu Moyo Dube Banda Adeleke Afolabi Nwachukwu Abdullahi",
        8,
    ),
    "caribbean": _zipf(
        "Campbell Brown Williams Clarke Francis Grant Morgan Reid Thomas Lewis Bailey Gordon Henry "
        "Bennett Powell Stewart Gayle Samuels Robinson Johnson Walker Edwards James Thompson Spencer "
        "Wright Allen Daley Forbes McKenzie Richards Hylton Morrison Palmer",
        8,
    ),
    "eastern_european": _zipf(
        "Nowak Kowalczyk Wójcik Kaczmarek Mazur Krawczyk Popescu Zając Ionescu Król Wieczorek Pawlak "
        "Walczak Popa Sikora Baran Michalak Nagy Szewczyk Stan Dumitru Munteanu Kovács Tóth Lungu "
        "Szabó Horváth Constantin Novák Svoboda Dvořák Rusu Ciobanu Stoica",
        8,
    ),
    "irish": _zipf(
        "Murphy Kelly O'Brien O'Sullivan Walsh McCarthy Byrne Ryan O'Connor O'Neill Doyle Gallagher "
        "Quinn Brennan McLoughlin Kennedy Lynch Murray Doherty O'Reilly Fitzgerald Flanagan Connolly "
        "Daly Boyle McGrath Nolan Power O'Donnell Burke Duffy Kavanagh",
        8,
    ),
    "chinese": _zipf(
        "Wang Li Zhang Chen Liu Yang Huang Zhao Wu Zhou Lin Wong Chan Cheung Lam Ng Ho Leung Lee Tang "
        "Yip Lau Chow Tan Lim",
        8,
    ),
}

# Children's given names (born in the last 25 years), by origin and sex: (male, female).
_CHILDREN: dict[str, tuple[str, str]] = {
    "english": (
        "Oliver Jack Harry George Noah Charlie Jacob Alfie Freddie Oscar Leo Archie Henry Joshua James "
        "William Thomas Ethan Isaac Alexander Joseph Edward Samuel Max Logan Lucas Daniel Theo Arthur "
        "Mason Harrison Dylan Riley Finley Tyler Jake Lewis Benjamin Adam Luke Ryan Liam Matthew Callum "
        "Connor Kai Reuben Toby Sebastian Elliot Louie Teddy Jayden Ollie Bobby Frankie Ronnie Tommy "
        "Albie Stanley Jenson Rory Zachary Nathan Jamie Aaron Michael David Christopher Stephen Steven "
        "Jonathan Philip Frederick Nicholas Caleb Hugo Jude Ellis Harvey Kian",
        "Olivia Amelia Isla Ava Emily Sophia Grace Mia Poppy Ella Lily Evie Isabella Sophie Jessica "
        "Chloe Ruby Freya Isabelle Charlotte Daisy Phoebe Florence Millie Holly Lucy Ellie Hannah Emma "
        "Megan Katie Lauren Bethany Amber Scarlett Willow Harper Rosie Matilda Evelyn Erin Eva Maisie "
        "Layla Elsie Lola Imogen Molly Zara Georgia Catherine Katherine Rebecca Abigail Eleanor Alice "
        "Francesca Jasmine Leah Summer Sienna Esme Darcie Harriet Maya Aria Violet Ivy Elizabeth "
        "Victoria Caitlin Madison Niamh Zoe Isabel Mary Kathryn Gracie",
    ),
    "south_asian": (
        "Muhammad Mohammed Ibrahim Yusuf Ayaan Zayn Ali Hamza Omar Abdullah Rayyan Aarav Arjun Rohan "
        "Adam Vihaan Zain Ishaan Ismail Aryan Hassan Bilal Imran Amar Dev Arham Musa Eesa Idris Haris "
        "Harpreet Gurpreet Jaspreet Mohammad Ahmed Umar Yahya Zakariya Aadam Krish Jay Rehan",
        "Aisha Maryam Fatima Zainab Hafsa Inaya Aleena Amira Sana Noor Hana Anaya Priya Aanya Diya "
        "Simran Jasleen Harleen Khadija Safa Mariam Zoya Ayesha Asiya Anisa Laiba Eshal Humaira Riya "
        "Saanvi Amna Iqra Sara Alisha Nimra Manahil Aleeza Eman Jannat Tanisha",
    ),
    "african": (
        "Emmanuel David Daniel Samuel Joshua Elijah Jeremiah Josiah Mohamed Abdi Ahmed Abdirahman Kwame "
        "Kofi Tobi Femi Ayo Chidi Kelechi Chukwuemeka Oluwaseun Ebenezer Nathaniel Kwabena Tendai "
        "Ibrahim Yusuf Michael Victor Divine Marvellous Praise Isaac Caleb Ethan",
        "Precious Blessing Favour Esther Grace Adaeze Chioma Ngozi Amara Zara Nia Ifeoma Oluwatoyin "
        "Abena Akosua Ama Hodan Ayan Fardowsa Hibo Ruth Deborah Mercy Tiwa Testimony Comfort Faith "
        "Miracle Hawa Maryam Fatima Aisha Naomi Abigail Anita",
    ),
    "caribbean": (
        "Jayden Tyrese Marcus Dwayne Kyle Leon Andre Jermaine Malachi Isaiah Elijah Nathan Darnell "
        "Tyrone Reece Kai Kemar Joshua Jordan Aaron Tristan Ezekiel Zion Jamal Levi Micah Roman",
        "Shanice Tia Jada Aaliyah Kiara Nia Imani Chantelle Monique Kezia Leah Destiny Amani Tanisha "
        "Shania Jasmine Jade Keisha Naomi Alicia Ebony Tiana Leila Kayla Rihanna",
    ),
    "eastern_european": (
        "Jakub Kacper Filip Szymon Mateusz Oskar Wiktor Antoni Aleksander Bartosz Dawid Andrei Luca "
        "Ionuț Stefan Matei Lukas Dominik Mihai Nikola Tomasz Adrian Gabriel David Alexandru Denis",
        "Zuzanna Julia Maja Zofia Hanna Lena Alicja Natalia Wiktoria Amelia Oliwia Maria Ioana Elena "
        "Andreea Sofia Gabriela Emilia Daria Karolina Alexandra Nikola Antonina Bianca Lucia",
    ),
    "irish": (
        "Jack Sean Conor Ciaran Cian Oisin Niall Patrick Liam Darragh Eoin Padraig Ronan Declan Cillian "
        "Fionn Aidan Kieran Dara Rian Tadhg Seán",
        "Niamh Aoife Ciara Saoirse Roisin Siobhan Orla Caoimhe Aisling Sinead Grainne Clodagh Maeve Erin "
        "Ella Emma Sophie Grace Róisín Ailbhe Clara",
    ),
    "chinese": (
        "Ethan Ryan Jason Wei Jun Hao Ming Haoran Yuxuan Junjie Zihan Kevin Daniel Lucas Tony Kai "
        "Jayden Zhen Tian",
        "Mei Ying Xin Yan Jia Lily Chloe Grace Wing Zixuan Yutong Xinyi Emily Chelsea Jessica Amy Hui "
        "Ling Qing",
    ),
}
CHILD_NAMES: dict[str, tuple[Weighted, Weighted]] = {
    origin: (_zipf(male), _zipf(female)) for origin, (male, female) in _CHILDREN.items()
}
# The parents' generation: Faker's en_GB given names (ONS, adults) are the white British parents'.
FAKER_MALE = _zipf(" ".join(_FakerGB.first_names_male))
FAKER_FEMALE = _zipf(" ".join(_FakerGB.first_names_female))
SURNAME_ORIGIN = {name: origin for origin, table in SURNAMES.items() for name in table.names}

HYPHEN_SUFFIXES = (("Jay", "Lee", "James", "John", "Ray"), ("Mae", "May", "Rose", "Grace", "Leigh", "Louise"))
# Share of children with one or more middle names, by origin.
MIDDLE_NAME_RATE = {
    "english": 0.55,
    "south_asian": 0.25,
    "african": 0.45,
    "caribbean": 0.45,
    "eastern_european": 0.2,
    "irish": 0.5,
    "chinese": 0.2,
}


def child_given(rng: random.Random, origin: str, male: bool) -> str:
    """A child's first given name: mostly from the family's origin, sometimes from the English list
    (or, for white British families, the parents' generation of names)."""
    if origin == "english" and rng.random() < 0.08:
        return (FAKER_MALE if male else FAKER_FEMALE).pick(rng)
    if origin != "english" and rng.random() < 0.15:
        origin = "english"
    return CHILD_NAMES[origin][0 if male else 1].pick(rng)


def adult_given(rng: random.Random, origin: str, male: bool) -> str:
    """A parent's given name."""
    if origin == "english" or rng.random() < 0.1:
        return (FAKER_MALE if male else FAKER_FEMALE).pick(rng)
    return CHILD_NAMES[origin][0 if male else 1].pick(rng)
